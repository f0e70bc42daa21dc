from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import needs
from accounts.roles import Capability
from d2r.api.views import TenantScopedMixin
from devices import pki, services
from devices.api.v1.serializers import (
    CertificateRequestSerializer,
    DeviceCertificateSerializer,
    DeviceKeySerializer,
    DeviceSerializer,
)
from devices.models import Device, DeviceCertificate


class DeviceViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):  # type: ignore[type-arg]
    """The fleet registry: register devices, move them through their lifecycle."""

    permission_classes = [needs(Capability.MANAGE_DEVICES)]
    serializer_class = DeviceSerializer
    queryset = Device.objects.none()

    def get_queryset(self) -> QuerySet[Device]:
        return Device.objects.all()

    def perform_create(self, serializer: DeviceSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.device_register(
            serial=data["serial"],
            model=data["model"],
            firmware=data.get("firmware", ""),
            public_key_pem=data.get("public_key_pem", ""),
            actor=str(self.request.user),
        )

    def _move(self, request: Request, to: str) -> Response:
        try:
            device = services.device_transition(
                device_id=self.get_object().pk, to=to, actor=str(request.user)
            )
        except services.TransitionError as exc:
            raise ValidationError({"state": [str(exc)]}) from exc
        return Response(DeviceSerializer(device).data)

    @extend_schema(request=None, responses=DeviceSerializer, summary="Activate a device")
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: Any = None) -> Response:
        return self._move(request, Device.State.ACTIVE)

    @extend_schema(request=None, responses=DeviceSerializer, summary="Suspend a device")
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: Any = None) -> Response:
        return self._move(request, Device.State.SUSPENDED)

    @extend_schema(
        request=None,
        responses=DeviceSerializer,
        summary="Decommission a device (final; its keys are revoked)",
    )
    @action(detail=True, methods=["post"])
    def decommission(self, request: Request, pk: Any = None) -> Response:
        return self._move(request, Device.State.DECOMMISSIONED)

    @extend_schema(
        request=None,
        responses={201: DeviceKeySerializer},
        summary="Issue an API key for the device (shown once)",
    )
    @action(detail=True, methods=["post"], url_path="api-keys")
    def api_keys(self, request: Request, pk: Any = None) -> Response:
        try:
            issued = services.device_api_key_issue(
                device_id=self.get_object().pk, actor=str(request.user)
            )
        except services.TransitionError as exc:
            raise ValidationError({"state": [str(exc)]}) from exc
        return Response(
            DeviceKeySerializer({"key": issued.key, "prefix": issued.prefix}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=CertificateRequestSerializer,
        responses={201: DeviceCertificateSerializer},
        summary="Issue a client certificate from the device's CSR",
    )
    @action(detail=True, methods=["post"])
    def certificates(self, request: Request, pk: Any = None) -> Response:
        data = CertificateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = pki.certificate_issue(
                device_id=self.get_object().pk, csr_pem=data.validated_data["csr"]
            )
        except pki.CertificateError as exc:
            raise ValidationError({"csr": [str(exc)]}) from exc
        return Response(DeviceCertificateSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses=DeviceCertificateSerializer,
        summary="Revoke one of the device's certificates",
    )
    @action(
        detail=True, methods=["post"], url_path=r"certificates/(?P<certificate_id>[0-9]+)/revoke"
    )
    def revoke_certificate(
        self, request: Request, pk: Any = None, certificate_id: str = ""
    ) -> Response:
        row = DeviceCertificate.objects.filter(device=self.get_object(), pk=certificate_id).first()
        if row is None:
            from rest_framework.exceptions import NotFound

            raise NotFound()
        pki.certificate_revoke(certificate_id=row.pk)
        row.refresh_from_db()
        return Response(DeviceCertificateSerializer(row).data)


class DeviceCaApi(TenantScopedMixin, APIView):
    """The workspace's device CA certificate and its revocation list (PEM), for proxies."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: str}, summary="Device CA certificate and CRL (PEM)")
    def get(self, request: Request, kind: str = "ca") -> HttpResponse:
        body = (
            pki.crl_pem()
            if kind == "crl"
            else pki.ca_get_or_create()
            .certificate.public_bytes(serialization.Encoding.PEM)
            .decode()
        )
        return HttpResponse(body, content_type="application/x-pem-file")
