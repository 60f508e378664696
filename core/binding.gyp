{
  "targets": [
    {
      "target_name": "tun",
      "sources": ["native/tun.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
