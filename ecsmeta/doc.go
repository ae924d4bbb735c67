// Package ecsmeta reads the ECS task metadata endpoint v4 ($ECS_CONTAINER_METADATA_URI_V4): the task's
// cluster, ARN, family, revision, availability zone, and this container's name, private IPv4 address, network
// mode and port mappings (Ports: the host port Docker publishes a container port on in bridge mode).
// discovery uses it for service addresses and meta, secrets for the region fallback, telemetry for tags.
package ecsmeta
