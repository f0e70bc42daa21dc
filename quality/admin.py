"""The QC manager's review desk on the workspace admin: thin UI over the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import CapabilityAdminMixin
from accounts.roles import Capability
from d2r.admin_sites import tenant_site
from quality import selectors, services
from quality.models import Decision, QcResult, QcReview, QcRun, ToleranceContract


class ReadOnlyMixin:
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class ReviewForm(forms.Form):
    action = forms.ChoiceField(choices=QcReview.Action.choices, widget=forms.RadioSelect)
    decision = forms.ChoiceField(choices=[("", "—"), *Decision.choices], required=False,
                                 help_text="Only for an override.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=True,
                             help_text="Mandatory; recorded in the audit log.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "override" and not data.get("decision"):
            raise forms.ValidationError("An override needs a decision.")
        return data


@admin.register(QcResult, site=tenant_site)
class QcResultAdmin(ReadOnlyMixin, CapabilityAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The list of judged inspections; the detail page shows heatmap, histogram, regions
    and the review form (accept / override with a reason; the verdict is never edited)."""

    view_capability = Capability.VIEW_INSPECTIONS
    change_capability = Capability.REVIEW
    list_display = ["created_at", "asset", "site", "decision", "reviewed", "uncertainty_mm",
                    "operator"]
    list_filter = ["decision", "run__scan__asset__site", "run__scan__asset", "created_at"]
    list_select_related = ["run__scan__asset__site"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    search_fields = ["=id", "=run__scan__id", "operator"]
    change_form_template = "admin/quality/qcresult/change_form.html"

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in QcResult._meta.fields]

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("reviews")

    @admin.display(description="asset", ordering="run__scan__asset__tag")
    def asset(self, obj: QcResult) -> str:
        return str(obj.run.scan.asset)

    @admin.display(description="site")
    def site(self, obj: QcResult) -> str:
        return str(obj.run.scan.asset.site)

    @admin.display(description="review")
    def reviewed(self, obj: QcResult) -> str:
        effective = selectors.effective_decision(obj)
        reviews = list(obj.reviews.all())
        if not reviews:
            return "—"
        return f"{reviews[0].action} → {effective}"

    def get_urls(self) -> list[Any]:
        own = [
            path("<uuid:pk>/artifact/<str:kind>/",
                 self.admin_site.admin_view(self.artifact_view), name="quality_qcresult_artifact"),
            path("<uuid:pk>/review/", self.admin_site.admin_view(self.review_view),
                 name="quality_qcresult_review"),
        ]
        return own + super().get_urls()

    def artifact_view(self, request: Any, pk: Any, kind: str) -> HttpResponse:
        from inspections import objectstore

        if not self.has_view_permission(request):
            raise PermissionDenied
        result = QcResult.objects.filter(pk=pk).first()
        key = {"heatmap": "heatmap_key", "histogram": "histogram_key"}.get(kind)
        if result is None or key is None or not getattr(result, key):
            raise Http404
        return HttpResponse(objectstore.get(getattr(result, key)), content_type="image/png")

    def review_view(self, request: Any, pk: Any) -> HttpResponse:
        if request.method != "POST":
            raise Http404
        if not self._can(request, Capability.REVIEW):
            raise PermissionDenied
        form = ReviewForm(request.POST)
        target = reverse("admin:quality_qcresult_change", args=[pk])
        if not form.is_valid():
            messages.error(request, "Review not recorded: " + "; ".join(
                str(e) for errors in form.errors.values() for e in errors))
            return HttpResponseRedirect(target)
        try:
            services.qc_review_record(result_id=pk, action=form.cleaned_data["action"],
                                      decision=form.cleaned_data["decision"] or None,
                                      reason=form.cleaned_data["reason"], user=request.user)
        except services.QcProblem as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, "Review recorded.")
        return HttpResponseRedirect(target)

    def change_view(self, request: Any, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        result = QcResult.objects.select_related("run__scan__asset").filter(pk=object_id).first()
        context = dict(extra_context or {})
        if result is not None:
            context.update({
                "qc": result, "effective_decision": selectors.effective_decision(result),
                "reviews": result.reviews.select_related("reviewer").order_by("-created_at"),
                "review_form": ReviewForm(), "can_review": self._can(request, Capability.REVIEW),
                "heatmap_url": reverse("admin:quality_qcresult_artifact",
                                       args=[result.pk, "heatmap"]),
                "histogram_url": reverse("admin:quality_qcresult_artifact",
                                         args=[result.pk, "histogram"]),
                "review_url": reverse("admin:quality_qcresult_review", args=[result.pk]),
                "judged_regions": [r for r in result.regions if r["decision"] != "not-judged"],
            })
        return super().change_view(request, object_id, form_url, extra_context=context)


@admin.register(QcRun, site=tenant_site)
class QcRunAdmin(ReadOnlyMixin, CapabilityAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    view_capability = Capability.VIEW_INSPECTIONS
    change_capability = Capability.MANAGE_ASSETS
    list_display = ["created_at", "scan", "status", "stage", "progress", "result_link"]
    list_filter = ["status", "created_at"]
    list_select_related = ["scan", "result"]
    show_full_result_count = False

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in QcRun._meta.fields]

    @admin.display(description="result")
    def result_link(self, obj: QcRun) -> str:
        result = getattr(obj, "result", None) if hasattr(obj, "result") else None
        if result is None:
            return "—"
        url = reverse("admin:quality_qcresult_change", args=[result.pk])
        return format_html('<a href="{}">{}</a>', url, result.decision)


@admin.register(ToleranceContract, site=tenant_site)
class ToleranceContractAdmin(ReadOnlyMixin, CapabilityAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Versions are recorded through the API (each change is a new version)."""

    view_capability = Capability.VIEW_INSPECTIONS
    change_capability = Capability.MANAGE_ASSETS
    list_display = ["asset", "name", "version", "cad_revision", "created_at"]
    list_filter = ["asset"]
    list_select_related = ["asset", "cad_revision"]
    show_full_result_count = False

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in ToleranceContract._meta.fields]
