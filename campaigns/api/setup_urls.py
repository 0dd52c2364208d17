from rest_framework.routers import SimpleRouter

from campaigns.api import setup

router = SimpleRouter(use_regex_path=False)
# Prefixed basename keeps these route names apart from the pages' ("campaign-list" is a page).
router.register("campaigns", setup.CampaignViewSet, basename="api-campaign")

urlpatterns = router.urls
