from django.apps import AppConfig


class ExportConfig(AppConfig):
    name = "export"
    default_auto_field = "django.db.models.BigAutoField"
