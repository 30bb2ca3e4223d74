"""The audited candidate's synset on each verdict, copied from the candidate (it never changes synset), so that
verdicts group by synset without joining every candidate. Made required in 0024: PostgreSQL refuses to alter a
table with the deferred foreign-key checks of this UPDATE pending."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_synsets(apps, schema_editor):
    AuditJudgement = apps.get_model("annotation", "AuditJudgement")
    Candidate = apps.get_model("annotation", "Candidate")
    AuditJudgement.objects.update(
        synset_id=Subquery(Candidate.objects.filter(id=OuterRef("candidate_id")).values("synset_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0022_audit_judgement"),
        ("taxonomy", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditjudgement",
            name="synset",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="taxonomy.synset"
            ),
        ),
        migrations.RunPython(copy_synsets, migrations.RunPython.noop),
    ]
