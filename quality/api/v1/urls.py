from __future__ import annotations

from rest_framework.routers import SimpleRouter

from quality.api.v1.views import ContractViewSet, QcReviewViewSet, QcRunViewSet

router = SimpleRouter(trailing_slash=False)
router.register("tolerance-contracts", ContractViewSet, basename="tolerance-contract")
router.register("qc-runs", QcRunViewSet, basename="qc-run")
router.register("qc-runs", QcReviewViewSet, basename="qc-review")
urlpatterns = router.urls
