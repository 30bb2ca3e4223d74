from django.urls import path

from export import api

urlpatterns = [
    path("datasets/", api.DatasetListApi.as_view(), name="dataset-list"),
    path("datasets/<int:version_id>/", api.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<int:version_id>/download/", api.DatasetDownloadApi.as_view(), name="dataset-download"),
]
