"""Serves stored image files from local storage. Names are content-addressed (a SHA-256 of the image), so a
file never changes under its name and browsers may keep it a year. Deployments on a bucket serve the
bucket's URLs instead (see annotation.selectors.images.image_urls)."""

import re

from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404
from django.views.decorators.http import require_safe

MEDIA_NAME = re.compile(r"(images|thumbs|medium)/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.(jpg|png|webp|gif|bmp)")


@require_safe
def media_file(request, name: str):
    if not MEDIA_NAME.fullmatch(name) or not isinstance(default_storage, FileSystemStorage):
        raise Http404("No such image.")
    try:
        handle = default_storage.open(name)
    except FileNotFoundError:
        raise Http404("No such image.") from None
    response = FileResponse(handle, filename=name.rsplit("/", 1)[1])
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    # Uploaded bytes are shown only as images: no scripts, no plugins, even if opened directly.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
