"""The OCI front end: runtime-spec bundles (spec) and runc's command line (runc_cli)."""
