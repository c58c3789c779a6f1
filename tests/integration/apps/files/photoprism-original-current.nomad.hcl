# The owner's PhotoPrism job of 2020 in current Nomad syntax, checked by hand against the original
# (photoprism-original-2020.nomad): the same restart policy, resources, service name and check.
# Translated: task-level `resources { network { port "photoprismui" {} } }` -> group `network`
# with `port "photoprismui" { to = 2342 }`; docker `port_map` -> `ports = ["photoprismui"]`; the
# service moves to the group (where it sees the group's ports); `address_mode = "driver"` (the
# container's bridge address) -> the default, the node's address and mapped port, which Traefik
# on the host reaches. Bind mounts of host paths stay as in the original.
job "photoprism" {
  type = "service"

  group "photoprism" {
    count = 1

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    network {
      port "photoprismui" {
        to = 2342
      }
    }

    service {
      name = "photos"
      tags = ["photos"]
      port = "photoprismui"

      check {
        name     = "alive"
        type     = "tcp"
        port     = "photoprismui"
        interval = "15s"
        timeout  = "5s"
      }
    }

    task "photoprism-docker" {
      driver = "docker"

      env {
        PHOTOPRISM_TITLE    = "OK"
        PHOTOPRISM_SUBTITLE = "Doy"
        PHOTOPRISM_DEBUG    = "false"
      }

      config {
        image = "photoprism/photoprism:20200204"
        ports = ["photoprismui"]
        volumes = [
          "/photoprism-cache:/home/photoprism/.cache/photoprism",
          "/photoprism-db:/home/photoprism/.local/share/photoprism/resources/database",
        ]
        labels {
          group = "photos"
        }
      }

      resources {
        cpu    = 500
        memory = 3072
      }
    }
  }
}
