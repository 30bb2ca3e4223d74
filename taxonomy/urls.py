from django.urls import path

from taxonomy import api

urlpatterns = [
    path("synsets/", api.SynsetSearchApi.as_view(), name="synset-search"),
    path("synsets/<str:wnid>/", api.SynsetDetailApi.as_view(), name="synset-detail"),
    path("synsets/<str:wnid>/descendants/", api.SynsetDescendantsApi.as_view(), name="synset-descendants"),
    path("label-sets/check/", api.LabelSetCheckApi.as_view(), name="label-set-check"),
]
