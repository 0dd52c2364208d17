from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from webhooks import secrets  # noqa: F401  (connects the cache-clearing receivers)
