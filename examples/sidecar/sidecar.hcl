# berth as an ECS sidecar that only delivers secrets: no main command, so it resolves every secret block into
# files on the shared volume and exits 0 — the application container waits for it with
# dependsOn: [{ containerName: "secrets", condition: "COMPLETE" }].
secret "app-config" {
  ssm  = "/example/app/config"
  file = "/run/secrets/app.conf"
  mode = "0444"
}
