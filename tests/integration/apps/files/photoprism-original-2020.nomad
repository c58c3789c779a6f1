# The owner's PhotoPrism job of 2020, as published (../shared/ORIGINAL-SETUP.md), the "..." of its
# env block left out. Nomad syntax of 2020: task-level resources { network {} } and docker port_map,
# which current Nomad rejects.
job "photoprism" {
  type = "service"
  group "photoprism" {
    count = 1
    restart {
      attempts = 2
      interval = "30m"
      delay = "15s"
      mode = "fail"
    }
    task "photoprism-docker" {
      driver = "docker"
      env {
        PHOTOPRISM_TITLE = "OK"
        PHOTOPRISM_SUBTITLE = "Doy"
        PHOTOPRISM_DEBUG = "false"
      }
      config {
        image = "photoprism/photoprism:20200204"
        network_mode = "bridge"
        port_map = {
          photoprismui = 2342
        }
        volumes = [
          "/photoprism-cache:/home/photoprism/.cache/photoprism",
          "/photoprism-db:/home/photoprism/.local/share/photoprism/resources/database",
        ]
        labels {
          group = "photos"
        }
      }
      resources {
        network {
          port "photoprismui" {}
        }
        cpu = 500
        memory = 3072
      }
      service {
        name = "photos"
        tags = ["photos"]
        address_mode = "driver"
        port = "photoprismui"
        check {
          name     = "alive"
          type     = "tcp"
          port     = "photoprismui"
          interval = "15s"
          timeout  = "5s"
        }
      }
    }
  }
}
