# berth as an ECS sidecar that only delivers secrets: no main command and nothing resident, so it resolves every
# secret block into files on the shared volume and exits 0. The application container waits for it with
#   dependsOn: [{ "containerName": "secrets", "condition": "SUCCESS" }]
# SUCCESS, not COMPLETE: when a fetch fails berth exits 69 (or 77 for access denied, 73 when the file cannot be
# written) and the application must not start without its secrets (fail closed). See
# examples/ecs/task-definition-sidecar.json; the image is examples/sidecar/Dockerfile.
secret "app-config" {
  ssm  = "/example/app/config"
  file = "/run/secrets/app.conf"
  mode = "0444" # the application container runs as another user than this root sidecar
}
