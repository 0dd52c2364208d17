from rest_framework.routers import SimpleRouter

from templates_app import api

router = SimpleRouter(use_regex_path=False)
# Prefixed basenames keep these route names apart from the pages' ("account-list" is a page).
router.register("accounts", api.AccountViewSet, basename="api-account")
router.register("phone-numbers", api.PhoneNumberViewSet, basename="api-phone-number")
router.register("templates", api.TemplateViewSet, basename="api-template")

urlpatterns = router.urls
