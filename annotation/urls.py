from django.urls import path

from annotation.api import boxes, hits

urlpatterns = [
    path("campaigns/<int:campaign_id>/hits/next/", hits.NextHitApi.as_view(), name="hit-next"),
    path("campaigns/<int:campaign_id>/quiz/", hits.QuizApi.as_view(), name="quiz-start"),
    path("hits/<int:hit_id>/submit/", hits.SubmitHitApi.as_view(), name="hit-submit"),
    path("hits/<int:hit_id>/release/", hits.ReleaseHitApi.as_view(), name="hit-release"),
    path("quizzes/<int:attempt_id>/submit/", hits.QuizSubmitApi.as_view(), name="quiz-submit"),
    path("me/", hits.ProfileApi.as_view(), name="worker-profile"),
    path("campaigns/<int:campaign_id>/boxes/<str:kind>/next/", boxes.NextBoxTaskApi.as_view(), name="box-task-next"),
    path("box-tasks/<int:task_id>/submit/", boxes.SubmitBoxTaskApi.as_view(), name="box-task-submit"),
    path("box-tasks/<int:task_id>/release/", boxes.ReleaseBoxTaskApi.as_view(), name="box-task-release"),
]
