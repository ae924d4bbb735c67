log_level = "info"

main {
  command      = ["java", "-jar", "/app/app.jar"]
  user         = "app"
  stop_signal  = "SIGTERM"
  stop_timeout = "25s"
  rlimits      = { nofile = 65536 }
  after        = ["migrate"]
}

job "migrate" {
  type    = "oneshot"
  command = ["/app/migrate", "up"]
}

secret "db" {
  secretsmanager = "prod/app/db"
  env            = { DB_USER = "username", DB_PASSWORD = "password" }
}

secret "app-config" {
  kms_file = "/app/config.json.enc"
  file     = "/run/secrets/config.json"
}

service "app" {
  port = 8080
  tags = ["v1"]
  check { http = "http://127.0.0.1:8080/health", interval = "10s", timeout = "2s" }
}

peers "cluster" {
  service = "app-hz"
  min     = 1
  wait    = "30s"
  env     = "HZ_MEMBERS"
}

telemetry { prometheus = "127.0.0.1:9102" }
