# aiwarden (rpm %post): service user, log-reading group, ownership. Enables and starts nothing.
if ! getent group aiwarden >/dev/null; then groupadd --system aiwarden; fi
if ! getent passwd aiwarden >/dev/null; then
    useradd --system --gid aiwarden --home-dir /var/lib/aiwarden --no-create-home \
        --shell /sbin/nologin --comment "aiwarden agent" aiwarden
fi
log_group="${AIWARDEN_LOG_GROUP:-adm}"
if getent group "$log_group" >/dev/null; then usermod -a -G "$log_group" aiwarden; fi
install -d -o aiwarden -g aiwarden -m 0750 /var/lib/aiwarden
chown root:aiwarden /etc/aiwarden /etc/aiwarden/aiwarden.toml /etc/aiwarden/rules.d
chmod 0750 /etc/aiwarden /etc/aiwarden/rules.d
chmod 0640 /etc/aiwarden/aiwarden.toml
if command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
# $1 = 2 on upgrade: restart only if it was running.
if [ "$1" -ge 2 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl try-restart aiwarden.service >/dev/null 2>&1 || :
fi
