# Sourced by scripts/run.sh (`make run`): the local credentials, generated once
# and kept in the directory given (default var/, never in the repository),
# readable by their owner only. Exports SECRET_KEY, ADMIN_TOKEN and
# FLOWER_BASIC_AUTH, each unless already set.
secrets_dir=${1:-var}
mkdir -p "$secrets_dir"
(
  # 0600 from the first byte: no moment when another user could read them.
  umask 077
  [ -s "$secrets_dir/secret-key" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' > "$secrets_dir/secret-key"
  [ -s "$secrets_dir/admin-token" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$secrets_dir/admin-token"
)
# Files written by earlier versions of run.sh were world-readable.
chmod 600 "$secrets_dir/secret-key" "$secrets_dir/admin-token"
export SECRET_KEY=${SECRET_KEY:-$(cat "$secrets_dir/secret-key")}
export ADMIN_TOKEN=${ADMIN_TOKEN:-$(cat "$secrets_dir/admin-token")}
# Flower reads FLOWER_-prefixed variables (flower.command.apply_env_options), so
# its password stays off every command line: ps, /proc/*/cmdline, var/Procfile.
export FLOWER_BASIC_AUTH=${FLOWER_BASIC_AUTH:-admin:$ADMIN_TOKEN}
