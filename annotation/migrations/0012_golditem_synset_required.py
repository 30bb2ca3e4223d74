import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0011_golditem_synset"),
    ]

    operations = [
        migrations.AlterField(
            model_name="golditem",
            name="synset",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="taxonomy.synset",
            ),
        ),
        migrations.AddIndex(
            model_name="golditem",
            index=models.Index(fields=["synset", "candidate"], name="golditem_synset_candidate"),
        ),
    ]
