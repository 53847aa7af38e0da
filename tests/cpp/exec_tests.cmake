# Executor layer tests (process groups, command and Python executors), run
# against real processes. Included from tests/cpp/CMakeLists.txt; expects the
# taskengine_core target and GTest to be known already.
find_package(Threads REQUIRED)
find_package(Python3 COMPONENTS Interpreter REQUIRED)
include(GoogleTest)

add_executable(taskengine_exec_tests
  ${CMAKE_CURRENT_LIST_DIR}/test_process_group.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_command_executor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_spawn.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_python_executor.cpp)
# The executor headers live in the core's private source tree.
target_include_directories(taskengine_exec_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../cpp/src)
target_compile_definitions(taskengine_exec_tests PRIVATE
  TASKENGINE_TEST_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/fixtures"
  TASKENGINE_TEST_PYTHON="${Python3_EXECUTABLE}")
target_compile_options(taskengine_exec_tests PRIVATE -Wall -Wextra)
target_link_libraries(taskengine_exec_tests PRIVATE taskengine_core GTest::gtest_main Threads::Threads)
gtest_discover_tests(taskengine_exec_tests
  DISCOVERY_TIMEOUT 30
  PROPERTIES TIMEOUT 120 LABELS exec)
