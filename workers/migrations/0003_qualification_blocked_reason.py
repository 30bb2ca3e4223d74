from django.db import migrations, models
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def reasons_from_profiles(apps, schema_editor):
    """Blocks recorded before this migration kept their reason on the worker's profile only (the latest block's):
    each blocked qualification starts from it."""
    Qualification = apps.get_model("workers", "Qualification")
    WorkerProfile = apps.get_model("workers", "WorkerProfile")
    reason = WorkerProfile.objects.filter(user_id=OuterRef("worker_id")).values("blocked_reason")[:1]
    Qualification.objects.filter(status="blocked").update(blocked_reason=Coalesce(Subquery(reason), Value("")))


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0002_workerprofile_sensitivity_workerprofile_specificity"),
    ]

    operations = [
        migrations.AddField(
            model_name="qualification",
            name="blocked_reason",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(reasons_from_profiles, migrations.RunPython.noop),
    ]
