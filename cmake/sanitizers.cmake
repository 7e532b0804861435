# SLATE_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer for every
# target, with UB made fatal so that a test fails instead of printing.
if(SLATE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
