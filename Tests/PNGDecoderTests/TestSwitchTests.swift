import PNGDecoder
import Testing

/// Each VOLATILE_REQUIRE_* switch makes only its own tests required (issue 12, item 8).
@Suite("Test switches")
struct TestSwitchTests {
    @Test("VOLATILE_REQUIRE_PYTHON_TESTS alone requires the Python reference tests")
    func pythonSwitch() {
        #expect(PythonReference.isRequired(environment: ["VOLATILE_REQUIRE_PYTHON_TESTS": "1"]))
        #expect(PythonReference.isRequired(environment: ["VOLATILE_REQUIRE_PYTHON_TESTS": "yes"]))
        #expect(!PythonReference.isRequired(environment: ["VOLATILE_REQUIRE_PYTHON_TESTS": "0"]))
        #expect(!PythonReference.isRequired(environment: [:]))
    }

    @Test("VOLATILE_REQUIRE_PRESSURE_TESTS does not require the Python reference tests")
    func pressureSwitchLeavesPythonAlone() {
        #expect(!PythonReference.isRequired(environment: ["VOLATILE_REQUIRE_PRESSURE_TESTS": "1"]))
        #expect(PythonReference.isRequired(environment: ["VOLATILE_REQUIRE_PRESSURE_TESTS": "1", "VOLATILE_REQUIRE_PYTHON_TESTS": "1"]))
    }
}
