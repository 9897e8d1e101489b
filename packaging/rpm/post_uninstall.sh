# aiwarden (rpm %postun): reload units; state in /var/lib/aiwarden and an edited configuration
# (as .rpmsave) are kept, as rpm has no purge.
if command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
