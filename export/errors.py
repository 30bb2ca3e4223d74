"""Domain errors of the export services: a sentence for people, a code for programs, an HTTP status."""


class ExportError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Forbidden(ExportError):
    status = 403
    code = "forbidden"


class NotFound(ExportError):
    status = 404
    code = "not_found"


class Conflict(ExportError):
    status = 409
    code = "conflict"
