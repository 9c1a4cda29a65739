{
  "variables": {
    "tokenpress_sanitize%": ""
  },
  "targets": [
    {
      "target_name": "tokenpress",
      "sources": [
        "native/attention/attention_avx512.cpp",
        "native/attention/attention_scalar.cpp",
        "native/attention/attention_avx2.cpp",
        "native/attention/roofline_decode.cpp",
        "native/attention/roofline_decode_avx2.cpp",
        "native/attention/roofline_decode_avx512.cpp",
        "native/unity/bindings.cpp",
        "native/unity/coding.cpp",
        "native/unity/core_kv.cpp",
        "native/unity/spec_drafters.cpp",
        "native/unity/text_tokenizer.cpp",
        "native/unity/token_kn.cpp",
        "native/unity/tokenizer_dynamic.cpp",
        "native/unity/text_omp.cpp",
        "native/unity/tokenizer_super.cpp",
        "native/unity/reduce_core.cpp",
        "native/unity/reduce_select.cpp",
        "native/unity/reduce_tome.cpp",
        "native/unity/reduce_cluster.cpp",
        "native/unity/reduce_cuda.cpp",
        "native/kv/kv_dots_avx512.cpp",
        "native/kv/kv_quant_attend_avx2.cpp",
        "native/kv/kv_quant_attend_avx512.cpp",
        "native/kv/kv_dots_avx2.cpp",
        "native/kv/kv_dots_scalar.cpp",
        "native/kv/kv_quant_attend_scalar.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "cflags": [
        "-O3",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-O3",
        "-fexceptions",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": [
          "-O3",
          "-fvisibility=hidden"
        ]
      },
      "msvs_settings": {
        "VCCLCompilerTool": {
          "ExceptionHandling": 1,
          "AdditionalOptions": [
            "/std:c++17",
            "/O2"
          ]
        }
      },
      "conditions": [
        [
          "tokenpress_sanitize=='address'",
          {
            "cflags": [
              "-fsanitize=address,undefined",
              "-fno-sanitize-recover=undefined",
              "-fno-omit-frame-pointer",
              "-g1",
              "-O1"
            ],
            "cflags_cc": [
              "-fsanitize=address,undefined",
              "-fno-sanitize-recover=undefined",
              "-fno-omit-frame-pointer",
              "-g1",
              "-O1"
            ],
            "ldflags": [
              "-fsanitize=address,undefined"
            ]
          }
        ],
        [
          "tokenpress_sanitize=='thread'",
          {
            "cflags": [
              "-fsanitize=thread",
              "-fno-omit-frame-pointer",
              "-g",
              "-O1"
            ],
            "cflags_cc": [
              "-fsanitize=thread",
              "-fno-omit-frame-pointer",
              "-g",
              "-O1"
            ],
            "ldflags": [
              "-fsanitize=thread"
            ]
          }
        ]
      ]
    }
  ]
}
