{
  "targets": [
    {
      "target_name": "diocp_native",
      "sources": [
        "src/native/binding.cc",
        "src/native/engine.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "conditions": [
        ["OS=='linux'", { "sources": ["src/native/poller-epoll.cc"] }],
        ["OS=='win'", {
          "sources": ["src/native/poller-iocp.cc"],
          "libraries": ["ws2_32.lib"],
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] } }
        }],
        ["OS=='mac'", {
          "xcode_settings": { "CLANG_CXX_LANGUAGE_STANDARD": "c++17", "GCC_ENABLE_CPP_EXCEPTIONS": "YES" }
        }]
      ]
    }
  ]
}
