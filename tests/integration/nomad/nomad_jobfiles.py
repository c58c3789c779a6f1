"""Job files the integration tests submit (current syntax: group network, docker ports)."""

WEB_HCL = r'''
variable "image" {
  type    = string
  default = "traefik/whoami:v1.10"
}

job "JOB_ID" {
  datacenters = ["*"]
  type        = "service"

  group "web" {
    count = 1

    network {
      port "http" {
        to = 80
      }
    }

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    volume "data" {
      type   = "host"
      source = "whoami-data"
    }

    task "whoami" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http"]
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      template {
        data        = <<EOT
TOKEN="{{ with secret "kv/data/whoami" }}{{ .Data.data.token }}{{ end }}"
EOT
        destination = "secrets/app.env"
        env         = true
      }

      vault {
        role = "whoami"
      }

      service {
        name = "whoami"
        port = "http"

        check {
          type     = "http"
          path     = "/health"
          interval = "10s"
          timeout  = "2s"
        }
      }

      resources {
        cpu    = 50
        memory = 64
      }
    }
  }
}
'''


def web_hcl(job_id: str) -> str:
    """HCL labels are literal (no interpolation): write the ID in."""
    return WEB_HCL.replace('job "JOB_ID"', 'job "%s"' % job_id)


PERIODIC_HCL = r'''
job "%s" {
  type = "batch"

  periodic {
    crons            = ["0 21 * * *"]
    prohibit_overlap = true
  }

  group "backup" {
    task "backup" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/backup.sh"
      }

      constraint {
        attribute = "${attr.kernel.name}"
        value     = "linux"
      }
    }
  }
}
'''

ORIGINAL_PORT_MAP_HCL = r'''
job "%s" {
  group "photoprism" {
    task "photoprism-docker" {
      driver = "docker"

      config {
        image    = "photoprism/photoprism:20200204"
        port_map = {
          photoprismui = 2342
        }
      }

      resources {
        network {
          port "photoprismui" {}
        }
        cpu    = 500
        memory = 3072
      }
    }
  }
}
'''


def dict_job(job_id: str, image: str = "traefik/whoami:v1.10") -> dict:
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "service",
        "Datacenters": ["*"],
        "TaskGroups": [{
            "Name": "web",
            "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http", "To": 80}]}],
            "Tasks": [{
                "Name": "whoami",
                "Driver": "docker",
                "Config": {"image": image, "ports": ["http"]},
                "Resources": {"CPU": 50, "MemoryMB": 64},
            }],
        }],
    }
