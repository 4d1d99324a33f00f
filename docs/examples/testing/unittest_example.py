"""The testing kit outside pytest: the context manager (run with ``python -m unittest unittest_example``)."""

from __future__ import annotations

# [START howto_testing_kit_context_manager]
import unittest

from airflow_provider_imagesearch.testing import emulated_imagesearch, sandbox_airflow_home

sandbox_airflow_home()  # before Airflow is imported: a temporary Airflow home for this run


class ShopInstanceTest(unittest.TestCase):
    def test_reads_the_instance(self):
        from airflow_provider_imagesearch.hooks.imagesearch import ImageSearchHook

        with emulated_imagesearch(auth="aksk") as kit:
            kit.add_instance("shop-main", tags=["color"], status="CREATION")
            detail = ImageSearchHook().get_instance("shop-main")
            assert [r["auth"] for r in kit.requests()] == ["aksk"]  # signed, one request

        assert detail.status.value == "CREATION"


# [END howto_testing_kit_context_manager]


if __name__ == "__main__":
    unittest.main()
