import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0023_audit_judgement_synset"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditjudgement",
            name="synset",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="taxonomy.synset"),
        ),
    ]
