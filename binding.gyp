{
  "targets": [
    {
      "target_name": "tokenpress",
      "sources": [
        "native/core/cpu_features.cpp",
        "native/core/thread_pool.cpp",
        "native/core/buffer.cpp",
        "native/core/byte_buffer.cpp",
        "native/core/machine_limits.cpp",
        "native/attention/attention.cpp",
        "native/attention/attention_scalar.cpp",
        "native/attention/attention_avx2.cpp",
        "native/attention/attention_avx512.cpp",
        "native/cuda/cuda_probe.cpp",
        "native/cuda/cuda_attention.cpp",
        "native/cuda/cuda_kv_cache.cpp",
        "native/cuda/cuda_equal_info.cpp",
        "native/kv/kv_ops.cpp",
        "native/kv/kv_quant.cpp",
        "native/kv/kv_plan.cpp",
        "native/kv/kv_cache.cpp",
        "native/kv/kv_cache_attend.cpp",
        "native/kv/kv_cache_compress.cpp",
        "native/kv/kv_quant_attend.cpp",
        "native/kv/kv_quant_attend_scalar.cpp",
        "native/kv/kv_quant_attend_avx2.cpp",
        "native/kv/policy_registry.cpp",
        "native/kv/policy_streamingllm.cpp",
        "native/kv/policy_knorm.cpp",
        "native/kv/policy_random.cpp",
        "native/kv/policy_tova.cpp",
        "native/kv/policy_h2o.cpp",
        "native/kv/policy_snapkv.cpp",
        "native/kv/policy_expected_attention.cpp",
        "native/kv/policy_speckv.cpp",
        "native/kv/policy_ems.cpp",
        "native/kv/kv_probs.cpp",
        "native/kv/kv_dots.cpp",
        "native/kv/kv_topk.cpp",
        "native/kv/kv_dots_scalar.cpp",
        "native/kv/kv_dots_avx2.cpp",
        "native/kv/kv_dots_avx512.cpp",
        "native/coding/kn_model.cpp",
        "native/coding/kn_model_file.cpp",
        "native/coding/kn_model_train.cpp",
        "native/binding/addon.cpp",
        "native/binding/attention_binding.cpp",
        "native/binding/system_binding.cpp",
        "native/binding/bench_binding.cpp",
        "native/binding/kv_binding.cpp",
        "native/binding/kv_cache_binding.cpp",
        "native/binding/cuda_binding.cpp",
        "native/coding/quantize.cpp",
        "native/coding/window_coder.cpp",
        "native/coding/equal_info.cpp",
        "native/coding/equal_info_slots.cpp",
        "native/coding/static_coding.cpp",
        "native/coding/coding_batch.cpp",
        "native/binding/coding_binding.cpp",
        "native/binding/coding_stepper_binding.cpp",
        "native/binding/model_binding.cpp",
        "native/coding/cm_logistic.cpp",
        "native/coding/cm_bit_history.cpp",
        "native/coding/cm_predictor.cpp",
        "native/coding/cm_codec.cpp",
        "native/binding/cm_binding.cpp"
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
      }
    }
  ]
}
