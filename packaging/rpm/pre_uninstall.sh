# aiwarden (rpm %preun): on final removal ($1 = 0) stop and disable the service.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload disable --now aiwarden.service >/dev/null 2>&1 || :
fi
