from django.apps import AppConfig


class TitanflowConfig(AppConfig):
    name = "titanflow"
    verbose_name = "TitanFlow"

    def ready(self):
        from titanflow import signals

        signals.connect()
