from django.db import models

WNID_PATTERN = r"^n\d{8}$"


class Synset(models.Model):
    """A WordNet 3.0 noun synset. The primary key is the WordNet noun offset, so the ImageNet wnid
    (``n`` + 8-digit offset) maps to it without a lookup table and foreign keys stay 4 bytes."""

    id = models.PositiveIntegerField(primary_key=True)
    name = models.CharField(max_length=120, unique=True)  # NLTK name, e.g. dog.n.01
    words = models.TextField()  # lemmas in ImageNet's words.txt style: "dog, domestic dog, Canis familiaris"
    gloss = models.TextField()
    lexname = models.CharField(max_length=32)  # lexicographer file, e.g. noun.animal
    depth = models.PositiveSmallIntegerField()  # shortest is-a path to entity.n.01
    sensitive = models.BooleanField(
        default=False, help_text="Campaigns must opt in explicitly to label this synset (people categories)."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.wnid} {self.name}"

    @property
    def wnid(self) -> str:
        return wnid_from_offset(self.id)

    @property
    def lemmas(self) -> list[str]:
        return self.words.split(", ")


class SynsetEdge(models.Model):
    """One is-a link: child is a hyponym (or an instance) of parent."""

    class Kind(models.TextChoices):
        HYPERNYM = "hypernym"
        INSTANCE = "instance"

    pk = models.CompositePrimaryKey("parent_id", "child_id")
    parent = models.ForeignKey(Synset, on_delete=models.CASCADE, related_name="child_edges", db_index=False)
    child = models.ForeignKey(Synset, on_delete=models.CASCADE, related_name="parent_edges")
    kind = models.CharField(max_length=8, choices=Kind.choices)

    def __str__(self) -> str:
        return f"{wnid_from_offset(self.child_id)} is-a {wnid_from_offset(self.parent_id)}"


class SynsetClosure(models.Model):
    """Ancestor closure of the is-a DAG (without self pairs): every (ancestor, descendant) pair once,
    with the length of the shortest path. Makes "all descendants/ancestors of X" one indexed query."""

    # The primary key's index on (ancestor, descendant) serves "descendants of X" as an index-only scan.
    pk = models.CompositePrimaryKey("ancestor_id", "descendant_id")
    ancestor = models.ForeignKey(Synset, on_delete=models.CASCADE, related_name="+", db_index=False)
    descendant = models.ForeignKey(Synset, on_delete=models.CASCADE, related_name="+")
    distance = models.PositiveSmallIntegerField()

    def __str__(self) -> str:
        return f"{wnid_from_offset(self.descendant_id)} under {wnid_from_offset(self.ancestor_id)}"


def wnid_from_offset(offset: int) -> str:
    return f"n{offset:08d}"
