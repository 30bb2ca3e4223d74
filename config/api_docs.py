"""The API's ReDoc page as this app serves it: nothing fetched from another host. drf-spectacular's template links
Google Fonts, and the ReDoc bundle puts in a logo from its CDN; the page here has no font links (the viewer falls
back to the browser's fonts) and a Content-Security-Policy that keeps images, fonts and requests on this site, so
the logo is never fetched (its image hides itself when it fails). A machine offline shows the same page."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView

SAME_SITE_ONLY = "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'"


class RedocView(SpectacularRedocView):
    template_name = "api_docs/redoc.html"

    @extend_schema(exclude=True)  # a page, not an endpoint of the schema (as the view it extends)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = SAME_SITE_ONLY
        return response
