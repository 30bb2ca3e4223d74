"""Request parsers for the REST API (wiring: REST_FRAMEWORK's DEFAULT_PARSER_CLASSES)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested deeper than Python's recursion limit refused as malformed JSON:
    the decoder raises RecursionError there, which is no ValueError, so DRF let it through as a 500 (QA: 5,000
    nested lists, on every JSON endpoint, the anonymous label-set check included)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("The request body is nested too deeply to read; send a flatter JSON object.") from None
