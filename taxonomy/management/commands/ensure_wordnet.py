from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from taxonomy.wordnet_data import WordNetUnavailable, ensure_wordnet


class Command(BaseCommand):
    help = "Make WordNet 3.0 available to NLTK in the data folder (NLTK download, else Debian's packages)."

    def handle(self, *args, **options):
        try:
            corpus = ensure_wordnet(settings.NLTK_DATA_DIR, log=lambda message: self.stderr.write(message))
        except WordNetUnavailable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"WordNet 3.0 ready in {corpus}")
