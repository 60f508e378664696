{
  "targets": [
    {
      "target_name": "nuse_ipc",
      "sources": ["native/ipc_addon.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
