# Every target of ours builds with these; warnings are errors.
add_library(slate_warnings INTERFACE)
target_compile_options(slate_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Werror
  -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough -Wformat=2)
