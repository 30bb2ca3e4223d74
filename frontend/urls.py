from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path
from django_ratelimit.decorators import ratelimit

from frontend import views, views_boxes, views_research

urlpatterns = [
    path("", views.home, name="home"),
    path("taxonomy/", views.taxonomy_search, name="taxonomy-search"),
    path("taxonomy/<str:wnid>/", views.synset_detail, name="synset-detail-page"),
    path("work/", views.work_home, name="work-home"),
    path("work/<int:campaign_id>/", views.label, name="label"),
    path("work/<int:campaign_id>/quiz/", views.quiz, name="quiz"),
    path("work/<int:campaign_id>/boxes/draw/", views_boxes.box_draw, name="box-draw"),
    path("work/<int:campaign_id>/boxes/<str:kind>/", views_boxes.box_verify, name="box-verify"),
    path("research/", views_research.campaign_list, name="research-campaigns"),
    path("research/new/", views_research.campaign_new, name="research-campaign-new"),
    path("research/<int:campaign_id>/", views_research.campaign_dashboard, name="research-dashboard"),
    path("research/<int:campaign_id>/synsets/<str:wnid>/", views_research.synset_inspect, name="research-synset"),
    path("manage/workers/", views_research.workers_manage, name="research-workers"),
    path("manage/payouts.csv", views_research.payouts_csv, name="research-payouts-csv"),
    path("accounts/signup/", views.signup, name="signup"),
    path(
        "accounts/login/",
        ratelimit(key="ip", rate=settings.RATELIMIT_SIGNIN, method="POST")(auth_views.LoginView.as_view()),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
