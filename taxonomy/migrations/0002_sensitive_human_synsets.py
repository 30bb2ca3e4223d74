"""Flag the human synsets outside person.n.01 as sensitive in a database imported before the rule widened
(taxonomy.wordnet_source.SENSITIVE_ROOTS): each root and its descendants, through the closure table."""

from django.db import migrations

# taxonomy.wordnet_source.SENSITIVE_ROOTS as of this migration (frozen: a later change to the rule needs its own).
SENSITIVE_ROOTS = (7846, 2472293, 5217168, 7942152, 7967382, 7967982, 8372411, 7970721, 8160276, 8180190, 7971023)


def flag(apps, schema_editor):
    Synset = apps.get_model("taxonomy", "Synset")
    SynsetClosure = apps.get_model("taxonomy", "SynsetClosure")
    roots = list(SENSITIVE_ROOTS)
    Synset.objects.filter(id__in=roots).update(sensitive=True)
    descendants = SynsetClosure.objects.filter(ancestor_id__in=roots).values("descendant_id")
    Synset.objects.filter(id__in=descendants).update(sensitive=True)


class Migration(migrations.Migration):
    dependencies = [("taxonomy", "0001_initial")]

    operations = [migrations.RunPython(flag, migrations.RunPython.noop)]
