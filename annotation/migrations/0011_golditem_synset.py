import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Gold items name their candidate's synset, filled in from the candidates (made required and indexed in 0012:
    PostgreSQL refuses to alter a table with the deferred foreign-key checks of this UPDATE pending)."""

    dependencies = [
        ("annotation", "0010_campaign_min_worker_accuracy"),
        ("taxonomy", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="golditem",
            name="synset",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="taxonomy.synset",
            ),
        ),
        migrations.RunSQL(
            "UPDATE annotation_golditem SET synset_id = "
            "(SELECT c.synset_id FROM annotation_candidate c WHERE c.id = annotation_golditem.candidate_id)",
            migrations.RunSQL.noop,
        ),
    ]
