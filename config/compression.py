"""Gzip for the app's own text answers. A dashboard of 2,958 synsets polls 1.4 MB of JSON every 15 s (progress
1.08 MB, quality 0.28 MB; the taxonomy roll-up, 0.82 MB, when its panel is open); compressed, some 13 times less.
Only JSON and HTML are compressed: images, media files, CSV and dataset tars are already compressed or streamed
with their length, and compressing them would only cost CPU. Django's GZipMiddleware pads each compressed answer
at random against BREACH."""

from django.middleware.gzip import GZipMiddleware

COMPRESSED_TYPES = frozenset({"application/json", "application/vnd.oai.openapi+json", "text/html"})


class TextGZipMiddleware(GZipMiddleware):
    def process_response(self, request, response):
        if response.get("Content-Type", "").split(";")[0].strip().lower() not in COMPRESSED_TYPES:
            return response
        return super().process_response(request, response)
