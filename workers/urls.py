from django.urls import path

from workers import api

urlpatterns = [
    path("auth/token/", api.TokenApi.as_view(), name="auth-token"),
    path("workers/external/", api.ExternalWorkerApi.as_view(), name="external-worker"),
]
