from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from taxonomy import wordnet_source
from taxonomy.models import WNID_PATTERN
from taxonomy.services import wordnet_import
from taxonomy.wordnet_data import WordNetUnavailable, ensure_wordnet


class Command(BaseCommand):
    help = "Import WordNet 3.0 noun synsets, is-a links and the ancestor closure. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="all 82,115 noun synsets")
        parser.add_argument(
            "--root",
            action="append",
            default=[],
            metavar="NAME_OR_WNID",
            help="a synset (dog.n.01 or n02084071) with its descendants and ancestors; repeatable",
        )
        parser.add_argument("--wnids", type=Path, help="file with one wnid per line; imports those and ancestors")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        if not (options["all"] or options["root"] or options["wnids"]):
            raise CommandError("Say what to import: --all, --root dog.n.01 (repeatable) or --wnids FILE.")
        wnid_offsets = self._read_wnids(options["wnids"]) if options["wnids"] else []
        try:
            ensure_wordnet(settings.NLTK_DATA_DIR, log=lambda message: self.stderr.write(message))
        except WordNetUnavailable as error:
            raise CommandError(str(error)) from None
        self.stderr.write("Reading WordNet 3.0 nouns through NLTK…")
        graph = wordnet_source.load_noun_graph(settings.NLTK_DATA_DIR)
        closure = wordnet_source.ancestor_distances(graph)
        if options["all"]:
            offsets = set(graph.synsets)
        else:
            roots = [self._resolve(graph, name) for name in options["root"]]
            unknown = [o for o in wnid_offsets if o not in graph.synsets]
            if unknown:
                listed = ", ".join(f"n{o:08d}" for o in unknown[:5])
                raise CommandError(f"{len(unknown)} wnids in {options['wnids']} are not WordNet 3.0 nouns: {listed}")
            offsets = wordnet_source.select(graph, closure, roots=roots, offsets=wnid_offsets)
        with tqdm(total=len(offsets), unit="synset", disable=options["no_progress"], file=self.stderr) as bar:
            summary = wordnet_import(graph=graph, closure=closure, offsets=offsets, progress=bar.update)
        self.stdout.write(
            f"Created {summary.created_synsets} synsets and {summary.created_links} is-a links. "
            f"The database now holds {summary.total_synsets} synsets and {summary.total_links} is-a links."
        )

    @staticmethod
    def _resolve(graph: wordnet_source.NounGraph, name: str) -> int:
        import re

        if re.match(WNID_PATTERN, name):
            offset = int(name[1:])
            if offset in graph.synsets:
                return offset
            raise CommandError(f"{name} is not a WordNet 3.0 noun synset.")
        try:
            return graph.offset_of(name)
        except KeyError:
            raise CommandError(f"{name} is not a WordNet 3.0 noun synset name (expected e.g. dog.n.01).") from None

    @staticmethod
    def _read_wnids(path: Path) -> list[int]:
        import re

        try:
            lines = path.read_text().split()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        bad = [line for line in lines if not re.match(WNID_PATTERN, line)]
        if bad:
            raise CommandError(f"{path} has {len(bad)} lines that are not wnids (n + 8 digits), e.g. {bad[0]!r}.")
        return [int(line[1:]) for line in lines]
