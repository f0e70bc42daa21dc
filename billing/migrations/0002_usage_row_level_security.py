"""Usage rows are visible and writable only by their own tenant role (and the platform)."""

from django.db import migrations

ENABLE = """
ALTER TABLE public.billing_usagerecord ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_usagerecord FORCE ROW LEVEL SECURITY;
CREATE POLICY usage_tenant_isolation ON public.billing_usagerecord
    USING (public.d2r_is_platform() OR tenant_schema = public.d2r_current_tenant())
    WITH CHECK (public.d2r_is_platform() OR tenant_schema = public.d2r_current_tenant());
"""
DISABLE = """
DROP POLICY IF EXISTS usage_tenant_isolation ON public.billing_usagerecord;
ALTER TABLE public.billing_usagerecord NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.billing_usagerecord DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial"), ("tenants", "0002_rls_helpers")]
    operations = [migrations.RunSQL(ENABLE, DISABLE)]
