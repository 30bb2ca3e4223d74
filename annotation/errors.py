"""Domain errors of the annotation services. Each carries a sentence for people, a code for programs and
the HTTP status an API should answer with, so every caller (REST, pages, commands) reports them alike."""


class AnnotationError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(AnnotationError):
    status = 404
    code = "not_found"


class Forbidden(AnnotationError):
    status = 403
    code = "forbidden"


class Conflict(AnnotationError):
    status = 409
    code = "conflict"


class Gone(AnnotationError):
    status = 410
    code = "expired"
