"""URLs of the researcher API: campaign management and the dashboard panels (included under /api/v1/)."""

from django.urls import path

from annotation.api import campaigns, dashboard

urlpatterns = [
    path("campaigns/", campaigns.CampaignListApi.as_view(), name="campaign-list"),
    path("campaigns/label-set/expand/", campaigns.LabelSetExpandApi.as_view(), name="label-set-expand"),
    path("campaigns/<int:campaign_id>/", campaigns.CampaignDetailApi.as_view(), name="campaign-detail"),
    path("campaigns/<int:campaign_id>/state/", campaigns.CampaignStateApi.as_view(), name="campaign-state"),
    path(
        "campaigns/<int:campaign_id>/synsets/<str:wnid>/",
        campaigns.SynsetOverviewApi.as_view(),
        name="campaign-synset",
    ),
    path(
        "campaigns/<int:campaign_id>/synsets/<str:wnid>/candidates/",
        campaigns.SynsetCandidatesApi.as_view(),
        name="campaign-synset-candidates",
    ),
    path(
        "campaigns/<int:campaign_id>/synsets/<str:wnid>/disagreements/",
        campaigns.SynsetDisagreementsApi.as_view(),
        name="campaign-synset-disagreements",
    ),
    path(
        "campaigns/<int:campaign_id>/synsets/<str:wnid>/gold/promote/",
        campaigns.GoldPromoteApi.as_view(),
        name="campaign-gold-promote",
    ),
    path(
        "campaigns/<int:campaign_id>/synsets/<str:wnid>/audit/",
        campaigns.SynsetAuditApi.as_view(),
        name="campaign-synset-audit",
    ),
    path(
        "campaigns/<int:campaign_id>/candidates/<int:candidate_id>/audit/",
        campaigns.CandidateAuditApi.as_view(),
        name="candidate-audit",
    ),
    path(
        "campaigns/<int:campaign_id>/candidates/<int:candidate_id>/override/",
        campaigns.CandidateOverrideApi.as_view(),
        name="candidate-override",
    ),
    path(
        "campaigns/<int:campaign_id>/candidates/<int:candidate_id>/gold/",
        campaigns.CandidateGoldApi.as_view(),
        name="candidate-gold",
    ),
    path(
        "campaigns/<int:campaign_id>/workers/<int:worker_id>/block/",
        campaigns.WorkerBlockApi.as_view(),
        name="campaign-worker-block",
    ),
    path(
        "campaigns/<int:campaign_id>/workers/<int:worker_id>/unblock/",
        campaigns.WorkerBlockApi.as_view(unblock=True),
        name="campaign-worker-unblock",
    ),
    path("campaigns/<int:campaign_id>/dashboard/summary/", dashboard.SummaryApi.as_view(), name="dashboard-summary"),
    path(
        "campaigns/<int:campaign_id>/dashboard/throughput/",
        dashboard.ThroughputApi.as_view(),
        name="dashboard-throughput",
    ),
    path("campaigns/<int:campaign_id>/dashboard/progress/", dashboard.ProgressApi.as_view(), name="dashboard-progress"),
    path("campaigns/<int:campaign_id>/dashboard/tree/", dashboard.TreeApi.as_view(), name="dashboard-tree"),
    path("campaigns/<int:campaign_id>/dashboard/quality/", dashboard.QualityApi.as_view(), name="dashboard-quality"),
    path("campaigns/<int:campaign_id>/dashboard/cost/", dashboard.CostApi.as_view(), name="dashboard-cost"),
]
