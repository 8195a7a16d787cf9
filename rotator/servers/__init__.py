"""Local servers started on loopback for ``rotator demo`` and the test suites: OpenBao dev,
moto (AWS), the TeamCity simulator, Airflow. Nothing here is used in production."""
