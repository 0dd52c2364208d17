from django.db import models
from django.db.models.functions import Now


class TrackedLink(models.Model):
    """One recipient's short link: `/r/<token>` answers with `url`, and only that.

    The token is random (no campaign, contact or phone in it); a click is one UPDATE by the
    unique token index (see `clicks.links.click_record`).
    """

    token = models.CharField(max_length=32, unique=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    contact = models.ForeignKey(
        "campaigns.Contact", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The sender's number and template the link went out with: the funnel per number and per
    # template counts links without joining the message log.
    phone = models.ForeignKey(
        "templates_app.PhoneNumber", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    template = models.ForeignKey(
        "templates_app.MessageTemplate", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    url = models.TextField()
    clicks = models.PositiveIntegerField(default=0, db_default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    last_clicked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "contact"], name="trackedlink_campaign"),
            # The dashboard's clicks today. Only a first click changes this column; later
            # clicks leave it as it is, so their UPDATE stays a heap-only one.
            models.Index(
                fields=["first_clicked_at"],
                condition=models.Q(first_clicked_at__isnull=False),
                name="trackedlink_first_click",
            ),
        ]

    def __str__(self):
        return self.token
