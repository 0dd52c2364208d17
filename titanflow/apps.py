from django.apps import AppConfig


class TitanflowConfig(AppConfig):
    name = "titanflow"
    verbose_name = "TitanFlow"
